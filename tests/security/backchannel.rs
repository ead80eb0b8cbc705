//! Back-channel logout tokens that must end nothing: each is 400 `invalid_request`, the session it names
//! keeps working, and nothing reaches the upstream. A captured genuine token, replayed, ends nothing
//! more either.

use crate::answer::{Answer, Expect};
use crate::spa::{token_handler_config, Browser, KEY1};
use crate::support::{client, Env};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use shroud::config::ResponseMode;
use shroud_testkit::{FakeAs, LogoutSpec};

/// A logout token (or body) the case sends.
#[derive(Debug, Clone)]
pub enum Sent {
    /// Minted by the authorization server for the session, as `spec` says (its `sid` is filled in).
    Minted(LogoutSpec),
    /// Minted by the authorization server with neither `sid` nor `sub`.
    Nobody,
    /// A genuine token's claims under `{"alg":"none"}` and no signature.
    AlgNone,
    /// A genuine token's claims, HS256-signed with the issuer's public JWK as the secret.
    Hs256WithPublicJwk,
    /// The session's own ID token (it has a `nonce` and no `events`).
    IdToken,
    /// The form body as it is.
    Body(&'static str),
}

/// One logout token that must be refused.
pub struct Case {
    /// What the attack is.
    pub name: &'static str,
    /// What is sent.
    pub sent: Sent,
    /// What Shroud must answer.
    pub expect: Expect,
}

const REFUSED: Expect = Expect::json(400, "invalid_request");

/// `[issuer] leeway_seconds` of the test configuration (the default).
const LEEWAY: i64 = 30;

fn minted(name: &'static str, spec: LogoutSpec) -> Case {
    Case { name, sent: Sent::Minted(spec), expect: REFUSED }
}

fn other(name: &'static str, sent: Sent) -> Case {
    Case { name, sent, expect: REFUSED }
}

/// The cases.
pub fn cases() -> Vec<Case> {
    let hour = 3600;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let typ = |t: &str| LogoutSpec { typ: Some(t.into()), ..Default::default() };
    vec![
        minted("logout token with a nonce", LogoutSpec { nonce: true, ..Default::default() }),
        minted("logout token without events", LogoutSpec { events: false, ..Default::default() }),
        minted(
            "logout token for another audience",
            LogoutSpec { aud: Some("someone-else".into()), ..Default::default() },
        ),
        minted(
            "logout token from another issuer",
            LogoutSpec { iss: Some("https://evil.example".into()), ..Default::default() },
        ),
        minted("logout token signed by another key", LogoutSpec { wrong_key: true, ..Default::default() }),
        minted("logout token expired", LogoutSpec { iat: Some(now - hour), ..Default::default() }),
        minted("logout token issued in the future", LogoutSpec { iat: Some(now + hour), ..Default::default() }),
        minted(
            "logout token issued over five minutes ago (plus the leeway), not yet expired",
            LogoutSpec { iat: Some(now - 300 - LEEWAY - 10), lifetime: Some(hour), ..Default::default() },
        ),
        minted("logout token without jti", LogoutSpec { jti: false, ..Default::default() }),
        minted("logout token typed as an access token", typ("at+jwt")),
        minted("logout token typed as an introspection answer", typ("token-introspection+jwt")),
        other("logout token with neither sid nor sub", Sent::Nobody),
        other("logout token with alg none", Sent::AlgNone),
        other("logout token HS256 keyed with the issuer's public JWK", Sent::Hs256WithPublicJwk),
        other("an ID token as the logout token", Sent::IdToken),
        other("a logout token that is no JWT", Sent::Body("logout_token=not.a.jwt")),
        other("no logout_token", Sent::Body("token=x")),
        other("two logout_token parameters", Sent::Body("logout_token=a.b.c&logout_token=d.e.f")),
    ]
}

/// A genuine logout token for `sid`, with its header replaced and signed by `sign` (the input is
/// `header.payload`).
fn resigned(idp: &FakeAs, sid: &str, header: serde_json::Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let genuine = idp.logout_token(LogoutSpec { sid: Some(sid.into()), ..Default::default() });
    let payload = genuine.split('.').nth(1).unwrap();
    let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_logout_tokens_end_nothing() {
    let env = Env::with(ResponseMode::Rfc9701, token_handler_config);
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    let access = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    let (sid, _) = env.idp.session_of(&access).unwrap();
    let id_token = spa.decrypt("shroud-id", &[KEY1]).unwrap();
    let endpoint = format!("{}/oauth-agent/backchannel-logout", env.shroud.url());
    for case in cases() {
        let body = match &case.sent {
            Sent::Minted(spec) => {
                let spec = LogoutSpec { sid: Some(sid.clone()), ..spec.clone() };
                format!("logout_token={}", env.idp.logout_token(spec))
            }
            Sent::Nobody => format!("logout_token={}", env.idp.logout_token(LogoutSpec::default())),
            Sent::AlgNone => {
                let header = serde_json::json!({ "alg": "none", "typ": "logout+jwt" });
                format!("logout_token={}", resigned(&env.idp, &sid, header, |_| Vec::new()))
            }
            Sent::Hs256WithPublicJwk => {
                let jwk = env.idp.public_jwks()["keys"][0].to_string();
                let header = serde_json::json!({ "alg": "HS256", "typ": "logout+jwt", "kid": env.idp.kid() });
                let token = resigned(&env.idp, &sid, header, |input| {
                    use josekit::jws::{JwsSigner, HS256};
                    HS256.signer_from_bytes(jwk.as_bytes()).unwrap().sign(input).unwrap()
                });
                format!("logout_token={token}")
            }
            Sent::IdToken => format!("logout_token={id_token}"),
            Sent::Body(body) => body.to_string(),
        };
        let resp = client()
            .post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Answer::read(resp).await.assert(case.name, &case.expect);
        assert_eq!(env.api.hits(), 0, "{}: nothing reached the upstream", case.name);
    }
    // The session they named is alive: its API calls and its refresh still work.
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "the session was not ended");
    assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204, "nor its refresh token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_logout_token_ends_nothing_more() {
    let env = Env::with(ResponseMode::Rfc9701, token_handler_config);
    let mut first = Browser::new(&env.shroud.url());
    first.login().await;
    let access = first.decrypt("shroud-at", &[KEY1]).unwrap();
    let (_, sub) = env.idp.session_of(&access).unwrap();
    // A genuine logout token naming only the user, as an attacker could capture it.
    let captured = env.idp.logout_token(LogoutSpec { sub: Some(sub), ..Default::default() });
    let endpoint = format!("{}/oauth-agent/backchannel-logout", env.shroud.url());
    let send = || client().post(&endpoint).form(&[("logout_token", captured.clone())]).send();
    assert_eq!(send().await.unwrap().status(), 200, "the genuine logout token ends the user's sessions");
    assert_eq!(first.send(Method::GET, "/spa/x", None).await.status(), 401, "the first session ended");

    // The user logs in again; the captured token, replayed, must not log them out again.
    let mut second = Browser::new(&env.shroud.url());
    second.login().await;
    let replayed = Answer::read(send().await.unwrap()).await;
    replayed.assert("a replayed logout token", &REFUSED);
    let body = replayed.json();
    assert_eq!(
        (body["error"].as_str(), body["message"].as_str()),
        (Some("invalid_request"), body["error_description"].as_str())
    );
    assert_eq!(body["message"], "the logout token was used already", "{body}");
    let hits = env.api.hits();
    assert_eq!(second.send(Method::GET, "/spa/x", None).await.status(), 200, "the new session lives");
    assert_eq!(env.api.hits(), hits + 1);
    assert_eq!(second.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204, "and can refresh");
}
